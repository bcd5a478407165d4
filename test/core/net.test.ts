import { describe, expect, it } from 'vitest';
import { cidrContains, inAnyCidr, parseCidr, parseIp } from '../../src/core/net.ts';

describe('net', () => {
  it('parses IPv4 and IPv6, rejects junk', () => {
    expect(parseIp('192.0.2.1')).not.toBeNull();
    expect(parseIp('2001:db8::1')).not.toBeNull();
    expect(parseIp('::ffff:192.0.2.1')).toEqual(parseIp('192.0.2.1'));
    expect(parseIp('[IPv6:2001:db8::1]')).toEqual(parseIp('2001:db8::1'));
    for (const bad of ['256.1.1.1', '1.2.3', 'abc', '1::2::3', '', '1.2.3.4.5']) expect(parseIp(bad)).toBeNull();
  });

  it('matches CIDRs of both families', () => {
    expect(inAnyCidr([parseCidr('10.0.0.0/8')!], '10.200.3.4')).toBe(true);
    expect(inAnyCidr([parseCidr('10.0.0.0/8')!], '11.0.0.1')).toBe(false);
    expect(inAnyCidr([parseCidr('192.0.2.128/25')!], '192.0.2.129')).toBe(true);
    expect(inAnyCidr([parseCidr('192.0.2.128/25')!], '192.0.2.127')).toBe(false);
    expect(cidrContains(parseCidr('2001:db8::/32')!, parseIp('2001:db8:ffff::1')!)).toBe(true);
    expect(cidrContains(parseCidr('2001:db8::/32')!, parseIp('2001:db9::1')!)).toBe(false);
    expect(parseCidr('10.0.0.0/33')).toBeNull();
  });
});

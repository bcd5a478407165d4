// The verdict log: filters → GET /v1/verdicts (cursor paging); a row opens its symbols; buttons train.
(() => {
  const { getJson, fmt, el } = window.atlas;
  const form = document.getElementById('filters');
  const tbody = document.querySelector('#verdicts tbody');
  const errorBox = document.getElementById('error');
  let cursor = null;
  let nextCursor = null;
  let page = 1;

  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams();
    for (const k of ['since', 'until', 'action', 'sender', 'limit']) {
      const v = String(data.get(k) ?? '').trim();
      if (v) params.set(k, v);
    }
    if (cursor) params.set('cursor', cursor);
    return params;
  }

  async function learn(v, label, button) {
    button.disabled = true;
    try {
      await getJson('/v1/history/learn', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messageId: v.messageId, label }),
      });
      button.textContent = `learned as ${label}`;
    } catch (e) {
      button.disabled = false;
      button.title = e.message;
      button.textContent = `${label}: not available`;
    }
  }

  function detailRow(v) {
    const symbols = el('table', { class: 'symbols' });
    for (const s of [...v.symbols].sort((a, b) => Math.abs(b.score) - Math.abs(a.score))) {
      symbols.append(el('tr', {}, el('td', {}, el('code', {}, s.name)), el('td', { class: 'num' }, fmt(s.score, 2)), el('td', {}, s.description ?? '')));
    }
    if (v.symbols.length === 0) symbols.append(el('tr', {}, el('td', {}, 'no symbols')));
    const spam = el('button', { type: 'button' }, 'Spam');
    const ham = el('button', { type: 'button' }, 'Ham');
    spam.addEventListener('click', () => learn(v, 'spam', spam));
    ham.addEventListener('click', () => learn(v, 'ham', ham));
    const facts = `Message-ID ${v.messageId || '–'} · queue ${v.queueId ?? '–'} · relay ${v.relayIp ?? '–'}${v.country ? ` (${v.country})` : ''} · to ${v.recipients.join(', ') || '–'} · ${fmt(v.elapsedMs, 2)} ms`;
    return el('tr', { class: 'detail' }, el('td', { colspan: '6' }, el('div', { class: 'note' }, facts), symbols, el('div', { class: 'pager' }, 'Mark as: ', spam, ham)));
  }

  function render(rows) {
    tbody.replaceChildren();
    const data = new FormData(form);
    const min = data.get('minScore') === '' ? -Infinity : Number(data.get('minScore'));
    const max = data.get('maxScore') === '' ? Infinity : Number(data.get('maxScore'));
    const shown = rows.filter((v) => v.score >= min && v.score <= max);
    for (const v of shown) {
      const tr = el(
        'tr',
        { class: 'row', 'data-id': String(v.id), tabindex: '0' },
        el('td', {}, new Date(v.time).toLocaleString()),
        el('td', {}, el('span', { class: `badge ${v.action}` }, v.action)),
        el('td', { class: 'num' }, fmt(v.score, 1)),
        el('td', { class: 'sender' }, v.sender || '–'),
        el('td', { class: 'subject', title: v.subject }, v.subject || '–'),
        el('td', {}, v.source),
      );
      let open = null;
      const toggle = () => {
        if (open) {
          open.remove();
          open = null;
        } else {
          open = detailRow(v);
          tr.after(open);
        }
      };
      tr.addEventListener('click', toggle);
      tr.addEventListener('keydown', (e) => e.key === 'Enter' && toggle());
      tbody.append(tr);
    }
    if (shown.length === 0) tbody.append(el('tr', {}, el('td', { colspan: '6', class: 'note' }, 'No verdicts match.')));
    document.getElementById('pageinfo').textContent = `page ${page} · ${shown.length} shown`;
    document.getElementById('older').disabled = !nextCursor;
  }

  async function load() {
    errorBox.textContent = '';
    try {
      const res = await getJson(`/v1/verdicts?${query()}`);
      nextCursor = res.nextCursor;
      render(res.verdicts);
      document.getElementById('status').textContent = `loaded ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      errorBox.textContent = e.message;
    }
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    cursor = null;
    page = 1;
    load();
  });
  document.getElementById('older').addEventListener('click', () => {
    if (!nextCursor) return;
    cursor = nextCursor;
    page++;
    load();
  });
  document.getElementById('newest').addEventListener('click', () => {
    cursor = null;
    page = 1;
    load();
  });
  load();
})();

// Reads the YAML config file and the environment into one validated Config.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { type Config, resolveConfig } from '../core/config.ts';
import { FilterError } from '../core/errors.ts';
import { shipped } from './paths.ts';

export function loadConfig(file: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  let doc: unknown;
  const configPath = file ?? env.ATLAS_CONFIG;
  if (configPath) {
    let text: string;
    try {
      text = readFileSync(configPath, 'utf8');
    } catch (e) {
      throw new FilterError('ECONFIG', `cannot read config file ${configPath}: ${(e as Error).message}`, { option: '--config' });
    }
    try {
      doc = parse(text);
    } catch (e) {
      throw new FilterError('ECONFIG', `config file ${configPath} is not valid YAML: ${(e as Error).message.split('\n')[0]}`, {
        option: '--config',
      });
    }
  }
  const config = resolveConfig(doc, env, os.availableParallelism());
  // Shipped rule and model paths are relative to the package; user paths to the working directory.
  const base = configPath ? path.dirname(path.resolve(configPath)) : process.cwd();
  const rel = (p: string, shippedDefault: string) => (p === shippedDefault ? shipped(shippedDefault) : path.resolve(base, p));
  config.rulesDir = rel(config.rulesDir, 'rules');
  config.modelFile = rel(config.modelFile, 'models/default.model');
  return config;
}

/** pino to stdout: JSON for journald, or a one-line human format on a terminal. */
import { pino, type Logger as PinoLogger } from 'pino';

export type Logger = PinoLogger;

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

export function createLogger(level: string, format: 'json' | 'human' | 'auto' = 'auto'): Logger {
  const human = format === 'human' || (format === 'auto' && process.stdout.isTTY === true);
  if (!human) return pino({ level, base: { service: 'bpfd' } });
  return pino(
    { level, base: undefined, timestamp: false },
    {
      write(line: string) {
        const { level: numeric, msg, ...fields } = JSON.parse(line) as Record<string, unknown>;
        const name = LEVEL_NAMES[numeric as number] ?? String(numeric);
        const extra = Object.entries(fields)
          .map(
            ([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`,
          )
          .join(' ');
        process.stdout.write(`${new Date().toISOString()} ${name} ${msg} ${extra}\n`);
      },
    },
  );
}

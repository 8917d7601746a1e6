/**
 * MONITOR's output format: each command as it arrives, with a microsecond
 * timestamp, the client's address and its arguments in double quotes with
 * escapes (AUTH and HELLO arguments redacted). The server decides who gets
 * the lines and cuts off a monitor whose unsent output passes the bound.
 */
import type { Args } from './args.js'

/** A monitor's unsent output beyond this cuts it off. */
export const MONITOR_OUTPUT_BYTES_MAX = 4 * 1024 * 1024

/** One MONITOR line (with its CRLF) for a command from `addr`. */
export function monitorLine(addr: string, a: Args, redact: boolean): string {
  const us = Math.floor((performance.timeOrigin + performance.now()) * 1000)
  let line = `+${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')} [0 ${addr}]`
  for (let i = 0; i < a.argc; i++) line += ' ' + (redact && i > 0 ? '"(redacted)"' : quoteArg(a.data, a.argStart[i], a.argLength[i]))
  return line + '\r\n'
}

/** An argument as MONITOR shows it: in double quotes, with \\, \", \n, \r, \t, \a, \b and \xHH escapes. */
function quoteArg(d: Uint8Array, start: number, length: number): string {
  let out = '"'
  for (let i = start; i < start + length; i++) {
    const c = d[i]
    if (c === 92) out += '\\\\'
    else if (c === 34) out += '\\"'
    else if (c === 10) out += '\\n'
    else if (c === 13) out += '\\r'
    else if (c === 9) out += '\\t'
    else if (c === 7) out += '\\a'
    else if (c === 8) out += '\\b'
    else if (c >= 32 && c < 127) out += String.fromCharCode(c)
    else out += '\\x' + c.toString(16).padStart(2, '0')
  }
  return out + '"'
}

/**
 * The value of the cookie named by `prefix` (`name=`) in a Cookie header, or undefined. Only that
 * cookie is looked at: no full parse, no allocation but the value itself. The first occurrence
 * wins (browsers send the one with the longest path first).
 */
export function cookieValue(header: string | undefined, prefix: string): string | undefined {
  if (header === undefined) return undefined;
  let at = header.indexOf(prefix);
  while (at !== -1) {
    // A match inside another cookie's name or value (`xlb=`, `a=lb=`) is not this cookie.
    const before = at === 0 ? SEMICOLON : header.charCodeAt(at - 1);
    if (before === SEMICOLON || before === SPACE || before === TAB) {
      const start = at + prefix.length;
      const semicolon = header.indexOf(';', start);
      const end = semicolon === -1 ? header.length : semicolon;
      const value = header.slice(start, end);
      // `lb=v ; x=1` is not RFC 6265 syntax, but some clients send it.
      return header.charCodeAt(end - 1) === SPACE ? value.trimEnd() : value;
    }
    at = header.indexOf(prefix, at + 1);
  }
  return undefined;
}

const SEMICOLON = 0x3b;
const SPACE = 0x20;
const TAB = 0x09;

// RFC 9112 §3.2: Host is `uri-host [ ":" port ]` (RFC 3986 §3.2.2). A value with '/', '?', '#',
// '@', '\' or white space would let a client choose where the authority ends: a cache key, a
// virtual host or a URL a backend builds from it could then name another resource.

// reg-name characters: unreserved, pct-encoded ('%'), sub-delims. '[' and ']' are taken apart below.
const REG_NAME = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%!$&'()*+,;=") REG_NAME[c.charCodeAt(0)] = 1;
// IP-literal: IPv6 (hex digits, ':', '.') or IPvFuture ('v', unreserved, sub-delims, ':').
const IP_LITERAL = new Uint8Array(128);
for (const c of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:") IP_LITERAL[c.charCodeAt(0)] = 1;

const COLON = 0x3a;
const OPEN = 0x5b;
const CLOSE = 0x5d;

/** Whether `host` is a valid `uri-host[:port]`. An empty value is valid (RFC 9112 §3.2: a target URI without authority). */
export function validHost(host: string): boolean {
  const length = host.length;
  let i = 0;
  if (length > 0 && host.charCodeAt(0) === OPEN) {
    for (i = 1; i < length; i++) {
      const c = host.charCodeAt(i);
      if (c === CLOSE) break;
      if (c >= 128 || IP_LITERAL[c] === 0) return false;
    }
    if (i === length || i === 1) return false;
    i++;
  } else {
    for (; i < length; i++) {
      const c = host.charCodeAt(i);
      if (c === COLON) break;
      if (c >= 128 || REG_NAME[c] === 0) return false;
    }
  }
  if (i === length) return true;
  if (host.charCodeAt(i) !== COLON) return false;
  // port = *DIGIT: "host:" is valid, and so are leading zeros.
  for (i++; i < length; i++) {
    const c = host.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

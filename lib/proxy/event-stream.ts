/**
 * Whether a Content-Type is `text/event-stream` (server-sent events): a body that never ends and
 * whose every write must reach the client at once, so nothing may hold, buffer or store it.
 */
export function isEventStream(contentType: unknown): boolean {
  if (typeof contentType !== 'string' || contentType.length < 17) return false;
  const semicolon = contentType.indexOf(';');
  const type = semicolon === -1 ? contentType : contentType.slice(0, semicolon);
  return type.trim().toLowerCase() === 'text/event-stream';
}

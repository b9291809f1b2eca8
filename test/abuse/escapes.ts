// Shared by the traversal suite and the pathRewrite function tests.
// pathRewrite { '/api': '/internal/api' }: whatever follows /api must stay under /internal/api once
// the backend normalizes and decodes it.
export const ESCAPES = [
  '/api/../admin',
  '/api/..',
  '/api/./admin',
  '/api/%2e%2e/admin',
  '/api/%2E%2e/admin',
  '/api/.%2e/admin',
  '/api/%2e./admin',
  '/api/%252e%252e/admin',
  '/api/..%2fadmin',
  '/api/%2f..%2fadmin',
  '/api/x/..%2F..%2Fadmin',
  '/api/..%5cadmin',
  '/api/%5c..%5cadmin',
  '/api/..\\admin',
  '/api/x\\..\\..\\admin',
  '/api/..;/admin',
  '/api/%2e%2e;x=1/admin',
  '/api/file%00.txt',
  '/api/%zz',
];

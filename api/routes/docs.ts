import path from 'node:path';
import express, { Router } from 'express';

// The package's own folder (its getAbsoluteFSPath() says the same, but it ships no types).
const SWAGGER_UI_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Tributary API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
`;

// A file of its own rather than an inline script, so a strict Content-Security-Policy in front of the API keeps working.
const INIT = `window.ui = SwaggerUIBundle({ url: '/api/openapi.json', dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: false });\n`;

/**
 * GET /docs: the OpenAPI document (/api/openapi.json) as a readable page, Swagger UI served from the installed
 * swagger-ui-dist (no CDN: it works offline and loads nothing from elsewhere). Public, like the document itself;
 * "Authorize" takes the API token to try requests from the page.
 */
export function docsRoutes(): Router {
  const r = Router();
  r.get('/docs', (_req, res) => {
    res.type('html').send(PAGE);
  });
  r.get('/docs/init.js', (_req, res) => {
    res.type('application/javascript').send(INIT);
  });
  r.use('/docs/assets', express.static(SWAGGER_UI_DIR, { index: false, fallthrough: false }));
  return r;
}

// The /docs page: Swagger UI on this web view's own document. A file, not an inline
// script, so the Content-Security-Policy can forbid inline scripts.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  // Swagger UI would otherwise send the document to validator.swagger.io.
  validatorUrl: null,
});

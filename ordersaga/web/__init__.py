"""The HTTP web view: routes, request validation and error mapping."""

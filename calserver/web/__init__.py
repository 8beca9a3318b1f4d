"""Server-rendered HTML pages (the public booking page, the usager's own RDV
page, agents' pages), on one foundation: ``site`` (the pages' sub-applications
and their context), ``sessions`` (signed session cookie and CSRF tokens),
``headers`` (Content-Security-Policy and other security headers), ``errors``
(French error pages), ``render`` (Jinja2 templates shipped in the package) and
``throttle`` (rate limits per address and per key)."""

"""Error pages in French: what went wrong and what to do, never a stack trace.

Handlers raise ``PageError`` (a status and a sentence for the usager) or
aiohttp's HTTP exceptions; the middleware renders ``error.html`` with the
status.  Anything unexpected is a 500 page; the log names the exception's
type and where it was raised, never the request's data (which may be
personal)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from calserver.access_log import log_failure
from calserver.web.render import page
from calserver.web.sessions import send_session

log = logging.getLogger("calserver.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TITLES = {
    400: "Demande incorrecte",
    403: "Accès refusé",
    404: "Page introuvable",
    405: "Action impossible",
    409: "Déjà fait",
    410: "Lien expiré",
    413: "Envoi trop volumineux",
    422: "Demande impossible",
    429: "Trop de tentatives",
    500: "Erreur de notre côté",
    503: "Service momentanément indisponible",
}
MESSAGES = {
    400: "La page demandée contient des informations que nous ne comprenons pas.",
    403: "Cette action n'est pas autorisée. Si vous remplissiez un formulaire, "
    "il a peut-être expiré : revenez en arrière, rechargez la page et recommencez.",
    404: "La page que vous cherchez n'existe pas ou n'existe plus. "
    "Vérifiez l'adresse, ou revenez à la page précédente.",
    405: "Cette action n'est pas possible sur cette page.",
    409: "Cette action a déjà été faite.",
    410: "Ce lien n'est plus valable.",
    413: "Les informations envoyées sont trop volumineuses.",
    422: "Cette demande ne peut pas aboutir.",
    429: "Vous avez fait trop de tentatives. Patientez quelques minutes avant de recommencer.",
    500: "Une erreur s'est produite de notre côté. Rien n'a été enregistré ; "
    "vous pouvez réessayer dans quelques instants.",
    503: "Le service est très sollicité. Réessayez dans quelques instants.",
}


class PageError(Exception):
    """A refusal to show as a page: ``status`` and a sentence for the usager."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.retry_after = status, message, retry_after


def error_page(request: web.Request, status: int, message: str | None = None) -> web.Response:
    response = page(
        request,
        "error.html",
        {
            "status": status,
            "title": TITLES.get(status, "Erreur"),
            "message": message or MESSAGES.get(status, MESSAGES[400]),
        },
        status=status,
    )
    send_session(request, response)
    return response


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        routing = request.match_info.http_exception
        if routing is not None:
            raise routing
        return await handler(request)
    except PageError as e:
        response = error_page(request, e.status, e.message)
        if e.retry_after is not None:
            response.headers["Retry-After"] = str(max(1, int(e.retry_after + 0.999)))
        return response
    except web.HTTPException as e:
        if e.status < 400:
            raise
        response = error_page(request, e.status)
        if e.status == 405:
            response.headers["Allow"] = e.headers.get("Allow", "")
        return response
    except Exception as e:
        log_failure(log, "page", request, e)
        return error_page(request, 500)

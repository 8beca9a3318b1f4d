"""The exception a storage write raises when a rule refuses it.

Not a ``ValueError``: Radicale turns those into a bare 400.  The application
maps this one to 403 with the precondition and the description it carries.
"""


class WriteRefused(Exception):
    def __init__(self, precondition: str, description: str) -> None:
        super().__init__(description)
        self.precondition = precondition
        self.description = description


# The project's XML namespace for its own preconditions.
NAMESPACE = "urn:calserver:booking"


def booking_precondition(code: str) -> str:
    """The Clark name of a booking rule's precondition element."""
    return f"{{{NAMESPACE}}}{code}"

"""Refused: the one exception type for a request this extension will not carry out, raised by domain code
(capabilities, connect/, management/, clients/, guards). It says what is wrong, what to do instead, and which kind
of refusal it is; the command boundary (cli_errors.translate) turns the kind into the azure.cli error type. Pure."""

import enum
from typing import Optional


class Kind(enum.Enum):
    """Kinds of refusal, each shown to the user as one azure.cli.core.azclierror type (cli_errors.CLI_ERRORS)."""
    MISSING = 'missing'                         # a required argument is missing
    MUTUALLY_EXCLUSIVE = 'mutually-exclusive'   # two arguments that do not go together
    INVALID_ARGUMENT = 'invalid-argument'       # an argument's value is wrong
    EXISTS = 'exists'                           # the thing to write exists; an option would replace it
    DAMAGED = 'damaged'                         # a file this command edits is not in a shape it can edit safely
    NOT_INSTALLED = 'not-installed'             # a local program the command runs is missing
    VALIDATION = 'validation'                   # anything else the request or the resource does not allow
    USAGE = 'usage'                             # an option that does not go with this use of the command
    FILE_OPERATION = 'file-operation'           # a local file or directory could not be read or written
    NOT_FOUND = 'not-found'                     # the resource named does not exist (ARM's 404)
    AZURE_RESPONSE = 'azure-response'           # Azure answered with an error the user cannot fix by arguments
    UNREACHABLE = 'unreachable'                 # Azure (ARM or the Bastion data plane) could not be reached
    UNAUTHORIZED = 'unauthorized'               # Azure refused the signed-in account
    AUTHENTICATION = 'authentication'           # signing in (a token, an Entra ID certificate) failed
    LOCAL = 'local'                             # this machine could not do its part (e.g. start the local tunnel)
    INTERRUPTED = 'interrupted'                 # the user stopped the command


# The kinds by their old module-level names, so `errors.MISSING` reads as before.
MISSING = Kind.MISSING
MUTUALLY_EXCLUSIVE = Kind.MUTUALLY_EXCLUSIVE
INVALID_ARGUMENT = Kind.INVALID_ARGUMENT
EXISTS = Kind.EXISTS
DAMAGED = Kind.DAMAGED
NOT_INSTALLED = Kind.NOT_INSTALLED
VALIDATION = Kind.VALIDATION


class Refused(Exception):
    """A refusal: ``message`` (what is wrong), ``recommendation`` (what to do instead) and ``kind`` (a Kind)."""

    def __init__(self, message: str, recommendation: Optional[str] = None, kind: Kind = Kind.VALIDATION):
        if not isinstance(kind, Kind):
            # A misspelled kind must fail where it is written, not become a ValidationError at the user.
            raise TypeError(f'Refused kind must be an errors.Kind, not {kind!r}')
        super().__init__(message)
        self.message = message
        self.recommendation = recommendation
        self.kind = kind

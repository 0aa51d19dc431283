"""Refused: the one exception type for a request this extension will not carry out, raised by the pure deciders
(capabilities, connect/preflight, connect/ssh_config, connect/file). It says what is wrong, what to do instead,
and which kind of refusal it is; cli_errors.py turns the kind into the azure.cli error type. Pure."""

# Kinds of refusal, each shown to the user as one azure.cli.core.azclierror type (see cli_errors.CLI_ERRORS).
MISSING = 'missing'                         # a required argument is missing
MUTUALLY_EXCLUSIVE = 'mutually-exclusive'   # two arguments that do not go together
INVALID_ARGUMENT = 'invalid-argument'       # an argument's value is wrong
EXISTS = 'exists'                           # the thing to write exists; an option would replace it
DAMAGED = 'damaged'                         # a file this command edits is not in a shape it can edit safely
NOT_INSTALLED = 'not-installed'             # a local program the command runs is missing
VALIDATION = 'validation'                   # anything else the request or the resource does not allow


class Refused(Exception):
    """A refusal: ``message`` (what is wrong), ``recommendation`` (what to do instead) and ``kind`` (above)."""

    def __init__(self, message, recommendation=None, kind=VALIDATION):
        super().__init__(message)
        self.message = message
        self.recommendation = recommendation
        self.kind = kind

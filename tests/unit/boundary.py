"""What a user sees of an error raised inside a command: the exception passed through the command boundary's
translator (cli_errors.translate, every command's exception_handler), as azure-cli passes it."""
import contextlib

import pytest

from azext_bastion_native.cli_errors import translate


@contextlib.contextmanager
def raises_as(expected, match=None):
    """pytest.raises(expected, match=...) on the error that leaves the command boundary."""
    with pytest.raises(expected, match=match) as caught:
        try:
            yield caught
        except Exception as err:  # pylint: disable=broad-except
            translate(err)

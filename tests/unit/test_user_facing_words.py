"""Words users see: the support table is named as Azure Bastion's documentation names it, with its link, in one
place (capabilities); no message, help text or argument help calls it "the seed"."""
import ast
import pathlib
import re

from knack.help_files import helps

import azext_bastion_native
from azext_bastion_native import capabilities

PACKAGE = pathlib.Path(azext_bastion_native.__file__).parent
SEED = re.compile(r'\bseed', re.IGNORECASE)


def _docstrings(tree):
    """The docstring nodes (for the maintainers, never shown: every command has its help in _help.py)."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                yield first.value


def _strings_users_may_see(path):
    tree = ast.parse(path.read_text(encoding='utf-8'))
    docstrings = set(map(id, _docstrings(tree)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.lineno, node.value


def test_no_string_in_the_package_says_seed():
    found = [f'{path.relative_to(PACKAGE)}:{line}: {text[:80]!r}' for path in sorted(PACKAGE.rglob('*.py'))
             for line, text in _strings_users_may_see(path) if SEED.search(text)]
    assert found == []


def test_no_help_text_says_seed_and_the_table_is_named_with_its_link():
    import azext_bastion_native._help  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
    ours = {command: text for command, text in helps.items() if command.startswith('network bastion')}
    assert [command for command, text in ours.items() if SEED.search(text)] == []
    naming = [command for command, text in ours.items() if 'support table' in text]
    assert naming and all(capabilities.SUPPORT_TABLE_URL in ours[command] for command in naming)


def test_the_title_and_link_have_one_home():
    mentions = [path.relative_to(PACKAGE) for path in PACKAGE.rglob('*.py')
                if capabilities.SUPPORT_TABLE_URL in path.read_text(encoding='utf-8')]
    assert [str(path) for path in mentions] == ['capabilities.py']
    assert capabilities.SUPPORT_TABLE_TITLE in capabilities.SUPPORT_TABLE
    assert capabilities.SUPPORT_TABLE_URL in capabilities.SUPPORT_TABLE

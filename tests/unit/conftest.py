"""Fixtures for unit tests of the connecting commands."""
import pytest

from azext_bastion_native.connect import resolve
from azext_bastion_native.connect.environment import Environment


@pytest.fixture
def offline(monkeypatch):
    """Any Azure lookup fails the test (a refusal must come before any network call), Cloud Shell is off, and
    the machine is a Linux client whose every program exists; returns that Environment."""
    def no_network(*_, **__):
        raise AssertionError('a refusal must come before any network call')
    monkeypatch.setattr(resolve, 'resolve_destination', no_network)
    monkeypatch.delenv('ACC_CLOUD', raising=False)
    return Environment(system='Linux', which=lambda name: f'/usr/bin/{name}', run=no_network)

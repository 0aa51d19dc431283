"""The emulator's own tests: the shared session harness plus direct ARM access for wire-level checks."""
import pytest
import requests

from bastion_emulator.testing.pytest_fixtures import az, az_env, emulator  # noqa: F401  pylint: disable=unused-import

NETWORK_API = "2026-03-01"  # what azure-mgmt-network 33.1 sends


class ArmHttp:
    """Raw HTTPS calls to the emulator's ARM with a client-credentials token, for asserting wire details."""

    def __init__(self, emulator_process):
        self.ready = emulator_process.ready
        self.base = self.ready["arm"].rstrip("/")
        self.session = requests.Session()
        self.token = self.fetch_token(self.ready["client_secret"]).json()["access_token"]

    def fetch_token(self, secret, **extra):
        form = {"grant_type": "client_credentials", "client_id": self.ready["client_id"], "client_secret": secret,
                "scope": "https://management.core.windows.net//.default", **extra}
        return self.session.post(f"{self.base}/{self.ready['tenant']}/oauth2/v2.0/token", data=form, timeout=10,
                                 verify=self.ready["ca_bundle"])

    def rg_id(self, group="demo-rg"):
        return f"/subscriptions/{self.ready['subscription']}/resourceGroups/{group}"

    def network_id(self, kind, name, group="demo-rg"):
        return f"{self.rg_id(group)}/providers/Microsoft.Network/{kind}/{name}"

    def call(self, method, path, body=None, api_version=NETWORK_API, headers=None, token=True):
        params = {"api-version": api_version} if api_version else {}
        all_headers = {"Authorization": f"Bearer {self.token}"} if token else {}
        all_headers.update(headers or {})
        return self.session.request(method, self.base + path, params=params, json=body, headers=all_headers,
                                    timeout=10, verify=self.ready["ca_bundle"])


@pytest.fixture(scope="session")
def arm(emulator):  # noqa: F811
    return ArmHttp(emulator)

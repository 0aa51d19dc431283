"""The Entra ssh-cert request (req_cnf JWK and key_id) is built byte for byte as Microsoft's `ssh` extension builds it.

The reference below follows Azure/azure-cli-extensions src/ssh/azext_ssh/rsa_parser.py (read the ``ssh-rsa`` line's
length-prefixed wire fields, base64url each as it is) and custom.py ``_prepare_jwk_data`` (kid = sha256 over n then
e; req_cnf = json.dumps with default separators). It reads the .pub file the extension wrote, so it shares no code
with the module under test.
"""
import base64
import hashlib
import json
import struct

import pytest

from azext_bastion_native.clients import entra_cert


def _upstream_request_data(public_key_line):
    blob = base64.b64decode(public_key_line.split(' ')[1])
    fields, offset = [], 0
    while offset < len(blob):
        (length,) = struct.unpack('>L', blob[offset:offset + 4])
        fields.append(blob[offset + 4:offset + 4 + length])
        offset += 4 + length
    assert fields[0] == b'ssh-rsa'
    exponent = base64.urlsafe_b64encode(fields[1]).decode('ascii')
    modulus = base64.urlsafe_b64encode(fields[2]).decode('ascii')
    key_hash = hashlib.sha256()
    key_hash.update(modulus.encode('utf-8'))
    key_hash.update(exponent.encode('utf-8'))
    key_id = key_hash.hexdigest()
    jwk = {'kty': 'RSA', 'n': modulus, 'e': exponent, 'kid': key_id}
    return {'token_type': 'ssh-cert', 'req_cnf': json.dumps(jwk), 'key_id': key_id}


@pytest.fixture(name='key_pair')
def fixture_key_pair(tmp_path):
    private_path, public_key = entra_cert.generate_key_pair(str(tmp_path))
    with open(private_path + '.pub', encoding='ascii') as pub:
        return public_key, pub.read().strip()


def test_request_data_matches_the_ssh_extension_exactly(key_pair):
    public_key, public_line = key_pair
    data = entra_cert.certificate_request_data(entra_cert.public_jwk(public_key))
    assert data == _upstream_request_data(public_line)


def test_modulus_keeps_the_wire_zero_byte_and_padding(key_pair):
    public_key, _ = key_pair
    jwk = json.loads(entra_cert.certificate_request_data(entra_cert.public_jwk(public_key))['req_cnf'])
    modulus = base64.urlsafe_b64decode(jwk['n'])
    # a 3072-bit modulus has its top bit set, so its SSH mpint is 385 bytes starting with 0x00: 516 chars, '=='
    assert modulus[0] == 0 and len(modulus) == entra_cert.KEY_BITS // 8 + 1
    assert jwk['n'].endswith('==') and len(jwk['n']) % 4 == 0
    assert jwk['e'] == 'AQAB'
    assert int.from_bytes(modulus, 'big') == public_key.public_numbers().n


@pytest.mark.parametrize('value, wire', [(65537, b'\x01\x00\x01'), (0x80, b'\x00\x80'), (0x7f, b'\x7f'),
                                         (0xff00, b'\x00\xff\x00')])
def test_numbers_are_encoded_as_ssh_mpints(value, wire):
    # RFC 4251 section 5: the fewest bytes, plus a zero byte when the top bit would otherwise read as a sign
    assert base64.urlsafe_b64decode(entra_cert._b64url_ssh_mpint(value)) == wire  # pylint: disable=protected-access

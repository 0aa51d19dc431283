#!/usr/bin/env python
# --------------------------------------------------------------------------------------------
# bastion-native: Azure Bastion native client commands for the Azure CLI.
# --------------------------------------------------------------------------------------------
from codecs import open  # pylint: disable=redefined-builtin
from setuptools import setup, find_packages

VERSION = '0.3.1'

CLASSIFIERS = [
    'Development Status :: 4 - Beta',
    'Intended Audience :: Developers',
    'Intended Audience :: System Administrators',
    'Programming Language :: Python',
    'Programming Language :: Python :: 3',
    'Programming Language :: Python :: 3.10',
    'Programming Language :: Python :: 3.11',
    'Programming Language :: Python :: 3.12',
    'License :: OSI Approved :: MIT License',
]

# Only what azure-cli does not ship already. azure-cli 2.91 no longer bundles azure-mgmt-network (its network
# module is generated on aaz); 33.x has a single API version. websockets drives the data-plane tunnel; h11 (pure
# Python, python-hyper) parses the data plane's HTTP/1.1 answers. uvloop is not a dependency (runtime dependencies
# stay pure-Python-installable): the tunnel runs on it where it is installed (relay/event_loop.py, README).
DEPENDENCIES = [
    'azure-mgmt-network>=33.0.0,<34',
    'websockets>=15.0',
    'h11>=0.16.0,<1',
]

with open('README.md', 'r', encoding='utf-8') as f:
    README = f.read()
with open('HISTORY.rst', 'r', encoding='utf-8') as f:
    HISTORY = f.read()

setup(
    name='bastion-native',
    version=VERSION,
    description='Azure Bastion native client: configure it, secure AzureBastionSubnet, and connect with '
                'your own SSH/RDP client or a local tunnel.',
    long_description=README + '\n\n' + HISTORY,
    long_description_content_type='text/markdown',
    license='MIT',
    author='bastion-native maintainers',
    author_email='bastion-native@example.invalid',
    url='https://example.invalid/bastion-native',
    classifiers=CLASSIFIERS,
    python_requires='>=3.10',
    packages=find_packages(include=['azext_bastion_native', 'azext_bastion_native.*']),
    install_requires=DEPENDENCIES,
    package_data={'azext_bastion_native': ['azext_metadata.json']},
)

# --------------------------------------------------------------------------------------------
# -o table transformers. Column order is what a user scans first.
# --------------------------------------------------------------------------------------------
from collections import OrderedDict


def nsg_rules_table(result):
    return [OrderedDict([
        ('Name', row['name']),
        ('Direction', row['direction']),
        ('Priority', row['priority']),
        ('Access', row['access']),
        ('Source', row['source']),
        ('Destination', row['destination']),
        ('Ports', row['ports']),
        ('Protocol', row['protocol']),
    ]) for row in result]

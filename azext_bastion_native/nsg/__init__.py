"""`az network bastion nsg`'s pure side: the rule set, checking an NSG against it, planning the writes;
the ARM reads and writes are in management/nsg.py."""

"""The pure ledger: rules, state, currencies and ids. No Faust, no I/O, no clock."""

"""Pure rules with no I/O and no wire names: names, ARNs, staging labels, passwords."""

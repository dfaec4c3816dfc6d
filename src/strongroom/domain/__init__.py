"""Pure rules with no I/O and no wire names: names, ARNs, Lambda function references, staging labels, passwords."""


e62

NoIdentityRx

e3*telegram:42j
telegram"hi
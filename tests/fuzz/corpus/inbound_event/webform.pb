
webform:abc*+33612345678*jean@example.com2
JeanDupont"LyonRN
contactA quote for three rooms
google"

rooms3*https://example.com/
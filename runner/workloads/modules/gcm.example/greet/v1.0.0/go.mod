module gcm.example/greet

go 1.22

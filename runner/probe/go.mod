module gcm.example/probe

go 1.22

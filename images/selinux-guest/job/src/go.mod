module gcm.example/selinux

go 1.22

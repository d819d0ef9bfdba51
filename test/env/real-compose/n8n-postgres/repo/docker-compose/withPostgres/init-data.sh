# placeholder for n8n-hosting's init-data.sh (a program; not copied)

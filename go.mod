module kemi

go 1.26.8

require (
	github.com/emiago/sipgo v1.7.3
	github.com/fsnotify/fsnotify v1.10.1
	github.com/gobwas/ws v1.3.2
	github.com/yuin/gopher-lua v1.1.2
	gorm.io/driver/sqlite v1.6.0
	gorm.io/gorm v1.31.2
)

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/pool v0.2.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/jinzhu/inflection v1.0.0 // indirect
	github.com/jinzhu/now v1.1.5 // indirect
	github.com/mattn/go-sqlite3 v1.14.22 // indirect
	golang.org/x/sync v0.16.0 // indirect
	golang.org/x/sys v0.24.0 // indirect
	golang.org/x/text v0.20.0 // indirect
)

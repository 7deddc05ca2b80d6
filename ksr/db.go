package ksr

import "kemi/kdb"

// DBOptions are the connection settings for a module's db_url: those
// its driver module (db_mysql) gave in DB, logging to the engine's log.
func (d *Deps) DBOptions(url string) kdb.Options {
	o := d.DB[kdb.Scheme(url)]
	if o.Log == nil {
		o.Log = d.Log
	}
	return o
}

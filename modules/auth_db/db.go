package auth_db

import (
	"sync"
	"sync/atomic"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"kemi/kdb"
)

// This file is the only one of auth_db that reads the database, through
// kdb (the subscriber table, version 7, or any table with the configured
// columns). The password query is built once per table (and use_domain)
// and run on every call, as Kamailio queries the table on every
// auth_check: a changed password takes effect at once.

type store struct {
	db *kdb.DB
	// reads are the prepared queries by readKey; n counts them, so a
	// script naming ever new tables cannot grow the map without bound
	// (past maxReads a query is built for the call alone).
	reads sync.Map
	n     atomic.Int32
}

const maxReads = 64

type readKey struct {
	table     string
	useDomain bool
}

func openStore(url string, o kdb.Options) (*store, error) {
	db, err := kdb.OpenWith(url, o)
	if err != nil {
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) close() error {
	s.reads.Range(func(_, v any) bool {
		v.(*kdb.Read).Close()
		return true
	})
	return s.db.Close()
}

// read returns the password query of table; kept false: the caller
// closes it after use.
func (s *store) read(table string, set Settings) (r *kdb.Read, kept bool, err error) {
	k := readKey{table, set.UseDomain}
	if r, ok := s.reads.Load(k); ok {
		return r.(*kdb.Read), true, nil
	}
	// Identifiers are quoted by gorm for the database's dialect
	// (backticks in MySQL, double quotes elsewhere).
	r, err = s.db.PrepareRead(table, set.PasswordCol, func(q *gorm.DB) *gorm.DB {
		q = q.Where(clause.Eq{Column: clause.Column{Name: set.UserCol}, Value: kdb.Arg(0)})
		if set.UseDomain {
			q = q.Where(clause.Eq{Column: clause.Column{Name: set.DomainCol}, Value: kdb.Arg(1)})
		}
		return q.Limit(1)
	})
	if err != nil {
		return nil, false, err
	}
	if s.n.Load() >= maxReads {
		return r, false, nil
	}
	if old, loaded := s.reads.LoadOrStore(k, r); loaded {
		return old.(*kdb.Read), true, nil
	}
	s.n.Add(1)
	return r, true, nil
}

// password reads the password column of user's row (and realm's, with
// use_domain).
func (s *store) password(table string, set Settings, user, realm string) (string, bool, error) {
	r, kept, err := s.read(table, set)
	if err != nil {
		return "", false, err
	}
	if !kept {
		defer r.Close()
	}
	if set.UseDomain {
		return r.String(user, realm)
	}
	return r.String(user)
}

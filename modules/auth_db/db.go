package auth_db

import (
	"gorm.io/gorm/clause"

	"kemi/kdb"
)

// This file is the only one of auth_db that reads the database, through
// kdb (the subscriber table, version 7, or any table with the configured
// columns).

type store struct{ db *kdb.DB }

func openStore(url string, o kdb.Options) (*store, error) {
	db, err := kdb.OpenWith(url, o)
	if err != nil {
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

// password reads the password column of user's row (and realm's, with
// use_domain).
func (s *store) password(table string, set Settings, user, realm string) (string, bool, error) {
	// Identifiers are quoted by gorm for the database's dialect
	// (backticks in MySQL, double quotes elsewhere).
	q := s.db.G.Table(table).Where(clause.Eq{Column: clause.Column{Name: set.UserCol}, Value: user})
	if set.UseDomain {
		q = q.Where(clause.Eq{Column: clause.Column{Name: set.DomainCol}, Value: realm})
	}
	var pws []string
	if err := q.Limit(1).Pluck(set.PasswordCol, &pws).Error; err != nil {
		if kdb.IsConnError(err) { // logged once by kdb's callback
			err = kdb.Reported(err)
		}
		return "", false, err
	}
	if len(pws) == 0 {
		return "", false, nil
	}
	return pws[0], true, nil
}

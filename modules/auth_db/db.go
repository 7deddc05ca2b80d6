package auth_db

import (
	"errors"
	"strings"

	"gorm.io/gorm"

	"kemi/kdb"
)

// This file is the only one of auth_db that reads the database, through
// kdb (the subscriber table, version 7, or any table with the configured
// columns).

type store struct{ db *kdb.DB }

func openStore(url string) (*store, error) {
	db, err := kdb.Open(url)
	if err != nil {
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

// password reads the password column of user's row (and realm's, with
// use_domain).
func (s *store) password(table string, set Settings, user, realm string) (string, bool, error) {
	q := s.db.G.Table(table).Select(set.PasswordCol).Where(quote(set.UserCol)+" = ?", user)
	if set.UseDomain {
		q = q.Where(quote(set.DomainCol)+" = ?", realm)
	}
	var pw string
	err := q.Limit(1).Row().Scan(&pw)
	if errors.Is(err, gorm.ErrRecordNotFound) || (err != nil && strings.Contains(err.Error(), "no rows")) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return pw, true, nil
}

package usrloc

import (
	"strings"

	"kemi/kdb"
)

// This file is the only one of usrloc that reads or writes the database,
// through kdb's gorm models, in Kamailio's location table layout
// (version 9).

type store struct{ db *kdb.DB }

// openStore opens db_url with the driver module's settings o and checks
// the location table's version.
func openStore(url string, o kdb.Options) (*store, error) {
	db, err := kdb.OpenWith(url, o)
	if err != nil {
		return nil, err
	}
	if err := db.CheckVersion("location", 9); err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func nullable(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// load reads table's rows.
func (s *store) load(table string, useDomain bool) ([]*Contact, error) {
	var rows []kdb.Location
	if err := s.db.G.Table(table).Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]*Contact, 0, len(rows))
	for _, r := range rows {
		aor := r.Username
		if useDomain && str(r.Domain) != "" {
			aor += "@" + str(r.Domain)
		}
		c := &Contact{
			Ruid: r.Ruid, AOR: aor, Contact: r.Contact, Received: str(r.Received), Path: str(r.Path),
			Q: int(r.Q*1000 + 0.5), CallID: r.Callid, CSeq: r.Cseq, Flags: r.Flags, CFlags: r.Cflags,
			UserAgent: r.UserAgent, Socket: str(r.Socket), Methods: -1, Instance: str(r.Instance), RegID: r.RegID,
			stored: true,
		}
		if r.Q < 0 {
			c.Q = -1
		}
		if r.Methods != nil {
			c.Methods = *r.Methods
		}
		// A permanent contact's expires is the epoch (0).
		if !r.Expires.IsZero() && r.Expires.Unix() > 0 {
			c.Expires = r.Expires.Unix()
		}
		c.Modified = r.LastModified.Unix()
		out = append(out, c)
	}
	return out, nil
}

// row is c as a location row; natFlag is nat_bflag's mask (keepalive is 1
// for a contact whose cflags have it, as ucontact.c's new_ucontact).
func row(c *Contact, useDomain bool, natFlag int) kdb.Location {
	user, dom := c.AOR, ""
	if useDomain {
		if i := strings.IndexByte(c.AOR, '@'); i >= 0 {
			user, dom = c.AOR[:i], c.AOR[i+1:]
		}
	}
	q := float64(c.Q) / 1000
	if c.Q < 0 {
		q = -1
	}
	exp := kdb.Time{Time: unix(c.Expires)}
	r := kdb.Location{
		Ruid: c.Ruid, Username: user, Domain: nullable(dom), Contact: c.Contact, Received: nullable(c.Received),
		Path: nullable(c.Path), Expires: exp, Q: q, Callid: c.CallID, Cseq: c.CSeq,
		LastModified: kdb.Time{Time: unix(c.Modified)}, Flags: c.Flags, Cflags: c.CFlags, UserAgent: c.UserAgent,
		Socket: nullable(c.Socket), Instance: nullable(c.Instance), RegID: c.RegID, ConnectionID: -1,
	}
	if c.CFlags&natFlag != 0 {
		r.Keepalive = 1
	}
	if c.Methods >= 0 {
		mth := c.Methods
		r.Methods = &mth
	}
	if !useDomain {
		r.Domain = nil
	}
	return r
}

// write upserts dirty (by ruid) and deletes the rows of deleted, in one
// transaction.
func (s *store) write(table string, dirty []*Contact, deleted []string, useDomain bool, natFlag int) error {
	tx := s.db.G.Begin()
	if tx.Error != nil {
		s.db.Failed("begin transaction on "+table, tx.Error)
		return tx.Error
	}
	if len(deleted) > 0 {
		if err := tx.Table(table).Where("ruid IN ?", deleted).Delete(&kdb.Location{}).Error; err != nil {
			tx.Rollback()
			return err
		}
	}
	for _, c := range dirty {
		r := row(c, useDomain, natFlag)
		res := tx.Table(table).Where("ruid = ?", c.Ruid).Omit("id").Updates(map[string]any{
			"username": r.Username, "domain": r.Domain, "contact": r.Contact, "received": r.Received, "path": r.Path,
			"expires": r.Expires, "q": r.Q, "callid": r.Callid, "cseq": r.Cseq, "last_modified": r.LastModified,
			"flags": r.Flags, "cflags": r.Cflags, "user_agent": r.UserAgent, "socket": r.Socket, "methods": r.Methods,
			"instance": r.Instance, "reg_id": r.RegID, "connection_id": r.ConnectionID, "keepalive": r.Keepalive,
		})
		if res.Error != nil {
			tx.Rollback()
			return res.Error
		}
		if res.RowsAffected == 0 {
			if err := tx.Table(table).Omit("id").Create(&r).Error; err != nil {
				tx.Rollback()
				return err
			}
		}
	}
	if err := tx.Commit().Error; err != nil {
		s.db.Failed("commit on "+table, err)
		return err
	}
	return nil
}

package queues

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Add modes (Options.AddMode), as Kamailio's mqueue "addmode".
const (
	AddModeAppend     = 0 // always append at the tail
	AddModeKeepOldest = 1 // key already queued: nothing added, still a success
	AddModeKeepNewest = 2 // key already queued: its first item is removed, the new one appended
)

// DB modes (Options.DBMode). Modes 1 to 3 follow Kamailio's source (mqueue_mod.c), where 2 means
// "load at start only" and 3 "save at stop only". The mqueue admin guide swaps 2 and 3; the source
// is the reference and wins (see ../shared/spec/kamailio-reference.md §1.6). Mode 4 is a kemi
// extension. The package documentation describes each mode precisely.
const (
	DBModeNone     = 0 // no table
	DBModeLoadSave = 1 // load at start, save at stop
	DBModeLoadOnly = 2 // load at start only
	DBModeSaveOnly = 3 // save at stop only
	DBModeDurable  = 4 // kemi: durable write-through journal
)

const (
	maxAddMode = AddModeKeepNewest
	maxDBMode  = DBModeDurable
)

// Options defines one queue. The zero value of every field but Name is a valid default:
// unbounded, append, no table.
type Options struct {
	Name    string
	Size    int // <= 0: unbounded
	AddMode int // AddModeAppend, AddModeKeepOldest or AddModeKeepNewest
	DBMode  int // DBModeNone .. DBModeDurable
}

func (o Options) validate() error {
	switch {
	case o.Name == "":
		return errors.New("name is missing")
	case o.AddMode < 0 || o.AddMode > maxAddMode:
		return fmt.Errorf("addmode %d: must be 0..%d", o.AddMode, maxAddMode)
	case o.DBMode < 0 || o.DBMode > maxDBMode:
		return fmt.Errorf("dbmode %d: must be 0..%d", o.DBMode, maxDBMode)
	}
	return nil
}

// ParseSpec parses the value of Kamailio's modparam("mqueue", "mqueue", ...):
// "name=q;size=N;dbmode=D;addmode=A". Keys are case-insensitive, blanks around keys and values
// are ignored, a trailing ';' is allowed and name is mandatory.
//
// Kamailio silently turns a malformed number into 0 and ignores nothing else; ParseSpec is
// stricter: an unknown or repeated key, an empty attribute, a non-numeric or out-of-range number,
// a dbmode outside 0..4 and an addmode outside 0..2 are errors naming the key and the value.
func ParseSpec(spec string) (Options, error) {
	var o Options
	seen := map[string]bool{}
	attrs := strings.Split(spec, ";")
	for i, attr := range attrs {
		attr = strings.TrimSpace(attr)
		if attr == "" {
			if i == len(attrs)-1 && i > 0 {
				break // trailing ';'
			}
			return Options{}, fmt.Errorf("empty attribute in %q", spec)
		}
		k, v, ok := strings.Cut(attr, "=")
		if !ok {
			return Options{}, fmt.Errorf("attribute %q: missing '='", attr)
		}
		k, v = strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(v)
		if seen[k] {
			return Options{}, fmt.Errorf("%s %q: key given twice", k, v)
		}
		seen[k] = true
		var err error
		switch k {
		case "name":
			o.Name = v
		case "size":
			o.Size, err = specInt(k, v)
		case "dbmode":
			o.DBMode, err = specInt(k, v)
		case "addmode":
			o.AddMode, err = specInt(k, v)
		default:
			return Options{}, fmt.Errorf("unknown key %q (value %q)", k, v)
		}
		if err != nil {
			return Options{}, err
		}
	}
	if err := o.validate(); err != nil {
		return Options{}, err
	}
	return o, nil
}

func specInt(k, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s %q: out of range", k, v)
	}
	if err != nil {
		return 0, fmt.Errorf("%s %q: not a number", k, v)
	}
	return n, nil
}

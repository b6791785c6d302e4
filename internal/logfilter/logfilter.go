// Package logfilter drops the fields of log lines that may carry what
// people wrote, before a line is written anywhere.
package logfilter

import (
	"bytes"
	"encoding/json"
	"io"
)

// Bodies are the fields dropped: mautrix logs each request's JSON body at
// debug level, and a message sent in an unencrypted room (or any request
// quoting a person) would otherwise reach the log.
var Bodies = []string{"req_body", "resp_body"}

// Writer writes zerolog's JSON lines to Out without the fields in Drop.
type Writer struct {
	Out  io.Writer
	Drop []string
}

// Write drops the fields from one JSON line (zerolog writes one event per
// call) and passes it on; a line that is not a JSON object passes as is.
func (w Writer) Write(p []byte) (int, error) {
	if !w.carries(p) {
		return w.Out.Write(p)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(p, &fields); err != nil {
		return w.Out.Write(p)
	}
	for _, name := range w.Drop {
		delete(fields, name)
	}
	line, err := json.Marshal(fields)
	if err != nil {
		return 0, err
	}
	if _, err := w.Out.Write(append(line, '\n')); err != nil {
		return 0, err
	}
	return len(p), nil
}

// carries is a cheap look before the parse: most lines carry no body.
func (w Writer) carries(p []byte) bool {
	for _, name := range w.Drop {
		if bytes.Contains(p, []byte(`"`+name+`"`)) {
			return true
		}
	}
	return false
}

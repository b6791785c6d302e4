package logfilter

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestRequestBodiesNeverReachTheLog(t *testing.T) {
	var out bytes.Buffer
	log := zerolog.New(Writer{Out: &out, Drop: Bodies}).With().Str("component", "mautrix").Logger()
	log.Debug().RawJSON("req_body", []byte(`{"body":"CANARY the overflow is in parse()"}`)).Str("method", "PUT").Msg("Request completed")
	log.Info().Str("room_id", "!r:x").Msg("Opened case")
	got := out.String()
	if strings.Contains(got, "CANARY") || strings.Contains(got, "req_body") {
		t.Errorf("a request body reached the log: %s", got)
	}
	if !strings.Contains(got, `"method":"PUT"`) || !strings.Contains(got, "Opened case") || strings.Count(got, "\n") != 2 {
		t.Errorf("the rest of the lines is lost: %s", got)
	}
}

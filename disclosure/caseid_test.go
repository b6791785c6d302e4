package disclosure

import (
	"encoding/json"
	"testing"
)

func TestCaseIDMarshalsAsText(t *testing.T) {
	type doc struct {
		Case CaseID            `json:"case"`
		Map  map[CaseID]string `json:"map"`
	}
	for _, c := range []struct {
		in   CaseID
		json string
	}{
		{CaseID{Year: 2026, Seq: 7}, `{"case":"SR-2026-0007","map":{"SR-2026-0007":"x"}}`},
		{CaseID{Year: 2031, Seq: 123456}, `{"case":"SR-2031-123456","map":{"SR-2031-123456":"x"}}`},
		{CaseID{}, `{"case":"","map":{"":"x"}}`},
	} {
		data, err := json.Marshal(doc{Case: c.in, Map: map[CaseID]string{c.in: "x"}})
		if err != nil {
			t.Fatalf("marshal %v: %v", c.in, err)
		}
		if string(data) != c.json {
			t.Errorf("marshal %v = %s, want %s", c.in, data, c.json)
		}
		var back doc
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("unmarshal %s: %v", data, err)
		}
		if back.Case != c.in || back.Map[c.in] != "x" || len(back.Map) != 1 {
			t.Errorf("round trip of %v = %+v", c.in, back)
		}
	}
}

func TestCaseIDUnmarshalText(t *testing.T) {
	var c CaseID
	if err := c.UnmarshalText([]byte("sr-2026-0042")); err != nil || c != (CaseID{Year: 2026, Seq: 42}) {
		t.Errorf("sr-2026-0042 = %v, %v; want SR-2026-0042 (prefix in any case)", c, err)
	}
	for _, bad := range []string{"SR-2026-0000", "SR-26-0001", "2026-0001", "SR-2026-00001"} {
		c := CaseID{Year: 2026, Seq: 1}
		if err := c.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q parsed as %v, want an error", bad, c)
		} else if c != (CaseID{Year: 2026, Seq: 1}) {
			t.Errorf("%q: a failed parse changed the ID to %v", bad, c)
		}
	}
	if err := json.Unmarshal([]byte(`{"Case":7}`), &struct{ Case CaseID }{}); err == nil {
		t.Error("a number unmarshalled as a case ID")
	}
}

package version

import "testing"

func TestValidate(t *testing.T) {
	good := New().Update(nil, "a", Write{Value: []byte("x")}).Update(nil, "b", Write{Value: []byte("y")})
	if err := good.Validate(); err != nil {
		t.Fatalf("valid object refused: %v", err)
	}
	cases := map[string]*Object{
		"huge counter": {Clock: Vector{"a": maxContextCounter + 1}},
		"unsorted": {Clock: Vector{"a": 1, "b": 1}, Siblings: []Sibling{
			{Dot: Dot{Actor: "b", Counter: 1}}, {Dot: Dot{Actor: "a", Counter: 1}}}},
		"duplicate dot": {Clock: Vector{"a": 1}, Siblings: []Sibling{
			{Dot: Dot{Actor: "a", Counter: 1}}, {Dot: Dot{Actor: "a", Counter: 1}}}},
		"uncovered sibling": {Clock: Vector{"a": 1}, Siblings: []Sibling{{Dot: Dot{Actor: "a", Counter: 2}}}},
		"zero dot":          {Clock: Vector{"a": 1}, Siblings: []Sibling{{Dot: Dot{Actor: "a", Counter: 0}}}},
	}
	for name, o := range cases {
		if err := o.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

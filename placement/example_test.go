package placement_test

import (
	"fmt"

	"github.com/meridian-kv/meridian/placement"
)

func ExampleRing_Plan() {
	ring, err := placement.NewRing([]placement.Member{
		{ID: "use-1", DC: "us-east", Rack: "a"},
		{ID: "use-2", DC: "us-east", Rack: "b"},
		{ID: "use-3", DC: "us-east", Rack: "c"},
		{ID: "use-4", DC: "us-east", Rack: "a"},
		{ID: "euw-1", DC: "eu-west", Rack: "a"},
		{ID: "euw-2", DC: "eu-west", Rack: "b"},
	}, 0) // 0: DefaultVNodes
	if err != nil {
		panic(err)
	}
	plan := ring.Plan(placement.KeyToken([]byte("user:42")), placement.Replication{
		"us-east": 3, "eu-west": 1, "ap-south": 1,
	})
	for _, m := range plan.All() {
		fmt.Println("replica", m.DC, m.ID)
	}
	fmt.Println("fallbacks us-east:", len(plan.Fallbacks["us-east"]), "eu-west:", len(plan.Fallbacks["eu-west"]))
	fmt.Println("short:", plan.Short)
	// Output:
	// replica eu-west euw-1
	// replica us-east use-3
	// replica us-east use-4
	// replica us-east use-2
	// fallbacks us-east: 1 eu-west: 1
	// short: map[ap-south:1]
}

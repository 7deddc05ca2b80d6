package jsonrpc_test

import (
	"context"
	"fmt"

	"kemi/jsonrpc"
)

func ExampleServer_Handle() {
	s, err := jsonrpc.NewServer(jsonrpc.Options{})
	if err != nil {
		panic(err)
	}
	s.Register(jsonrpc.Method{
		Name: "mqueue.get_size",
		Doc:  "Get size of a queue.",
		Handler: func(_ context.Context, p jsonrpc.Params) (any, error) {
			name, ok := p.String(0)
			if !ok {
				return nil, &jsonrpc.Fault{Code: 400, Message: "No queue name"}
			}
			if name != "q1" {
				return nil, &jsonrpc.Fault{Code: 404, Message: "No such queue"}
			}
			return map[string]any{"name": name, "size": 2}, nil
		},
	})
	ctx := context.Background()
	for _, req := range []string{
		`{"jsonrpc":"2.0","method":"mqueue.get_size","params":["q1"],"id":1}`,
		`{"jsonrpc":"2.0","method":"mqueue.get_size","params":["q9"],"id":"a"}`,
		`{"jsonrpc":"2.0","method":"mqueue.get_size","params":[12],"id":2}`,
		`{"jsonrpc":"2.0","method":"core.nothing","id":3}`,
		`{"jsonrpc":"2.0","method":"mqueue.get_size","params":["q1"]}`,
	} {
		fmt.Printf("%s\n", s.Handle(ctx, []byte(req)))
	}
	// Output:
	// {"jsonrpc":"2.0","result":{"name":"q1","size":2},"id":1}
	// {"jsonrpc":"2.0","error":{"code":404,"message":"No such queue"},"id":"a"}
	// {"jsonrpc":"2.0","error":{"code":400,"message":"No queue name"},"id":2}
	// {"jsonrpc":"2.0","error":{"code":500,"message":"Method Not Found"},"id":3}
	//
}

func ExampleParseCLIArgs() {
	// kemi rpc mqueue.get_size 123 s:123 i:7 q1
	fmt.Printf("%#v\n", jsonrpc.ParseCLIArgs([]string{"123", "s:123", "i:7", "q1"}))
	// Output:
	// []interface {}{123, "123", 7, "q1"}
}

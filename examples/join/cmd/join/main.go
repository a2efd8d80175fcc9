// Command join is the join example as a Go SDK program: revenue per
// customer country from orders and customers in CSV, the job of
// examples/join/job.toml built with sdk.NewJob and run on an embedded grid.
//
//	go run ./examples/join/cmd/join [-orders F] [-customers F] [-broadcast-threshold 10MiB] [-explain]
package main

import (
	"flag"

	"github.com/wasmgrid/wasmgrid/examples/internal/excmd"
	"github.com/wasmgrid/wasmgrid/sdk"
	"github.com/wasmgrid/wasmgrid/sdk/local"
)

// Job builds the join job: orders keyed by customer, joined with the
// customers' countries, summed by country.
func Job(guest sdk.ModuleSource, orders, customers string) *sdk.JobBuilder {
	job := sdk.NewJob("join")
	j := job.Module("j", guest)
	byCountry := job.CSVFile(customers).Map(j.Func("customer_country"))
	job.CSVFile(orders).
		Map(j.Func("order_by_customer")).
		Join(byCountry).
		Map(j.Func("revenue")).
		ReduceByKey(j.Func("sum")).
		Map(j.Func("format")).
		Write(sdk.Stdout())
	return job
}

func main() {
	local.MainIfExecutor()
	orders := flag.String("orders", "examples/join/data/orders.csv", "orders: order_id,customer_id,cents, with a header")
	customers := flag.String("customers", "examples/join/data/customers.csv", "customers: customer_id,name,country, with a header")
	threshold := flag.String("broadcast-threshold", "10MiB", "largest right side joined by broadcast (0: a shuffle join)")
	explain := flag.Bool("explain", false, "print the plan and exit")
	guest := flag.String("guest", "examples/join/guest/go", "the guest's Go package directory")
	flag.Parse()
	job := Job(sdk.GoGuest(*guest), *orders, *customers).Conf("join.broadcast_threshold", *threshold)
	excmd.RunOrExplain("join", job, *explain)

}

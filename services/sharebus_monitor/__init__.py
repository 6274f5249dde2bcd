"""Operations monitoring: consumer lag of the router and of every subscriber, the catalogue as info
metrics, and the generated Grafana dashboards and Prometheus runner that go with them."""

package e2e

import (
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go-micro.dev/v4/broker"
	"go-micro.dev/v4/registry"

	"github.com/signet-micro/signet/internal/testid"
	signet "github.com/signet-micro/signet/registry"
	"github.com/signet-micro/signet/signing"
)

const (
	topic = "orders"

	// messages is the number of messages each publisher sends.
	messages = 20

	// quietPeriod is how long the rogue subscribers' counts must stay
	// unchanged after the genuine subscriber got every message. The http
	// broker sends each message to the nodes of one lookup in turn, so a
	// rogue node in that lookup would get the message milliseconds after
	// the genuine one.
	quietPeriod = 500 * time.Millisecond
)

// subscriber is an http broker on 127.0.0.1 subscribed to one topic.
type subscriber struct {
	broker   broker.Broker
	received atomic.Int64
}

// subscribe connects an http broker that registers through reg and
// subscribes it to topic. It disconnects at cleanup.
func subscribe(t *testing.T, reg registry.Registry, topic string) *subscriber {
	t.Helper()
	s := &subscriber{broker: connectBroker(t, reg)}
	sub, err := s.broker.Subscribe(topic, func(broker.Event) error {
		s.received.Add(1)
		return nil
	})
	if err != nil {
		t.Fatalf("subscribing to topic %q: %v", topic, err)
	}
	t.Cleanup(func() {
		if err := sub.Unsubscribe(); err != nil {
			t.Errorf("unsubscribing from topic %q: %v", topic, err)
		}
	})
	return s
}

// connectBroker connects an http broker on 127.0.0.1 that reads and writes
// reg, and disconnects it at cleanup.
func connectBroker(t *testing.T, reg registry.Registry) broker.Broker {
	t.Helper()
	b := broker.NewBroker(broker.Registry(reg), broker.Addrs("127.0.0.1:0"))
	if err := b.Connect(); err != nil {
		t.Fatalf("connecting the http broker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Disconnect(); err != nil {
			t.Errorf("disconnecting the http broker: %v", err)
		}
	})
	return b
}

// brokerNode returns the subscriber node that reg stores for the broker
// listening at address, once reg has it.
func brokerNode(t *testing.T, reg registry.Registry, address string) (*registry.Service, *registry.Node) {
	t.Helper()
	var svc *registry.Service
	var node *registry.Node
	waitFor(t, "the subscriber node at "+address, func() bool {
		services, _ := reg.GetService(signing.BrokerService)
		for _, s := range services {
			for _, n := range s.Nodes {
				if n.Address == address {
					svc, node = s, n
					return true
				}
			}
		}
		return false
	})
	return &registry.Service{Name: svc.Name, Version: svc.Version, Nodes: []*registry.Node{node}}, node
}

func publish(t *testing.T, b broker.Broker, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		msg := &broker.Message{Header: map[string]string{"seq": strconv.Itoa(i)}, Body: []byte("order " + strconv.Itoa(i))}
		if err := b.Publish(topic, msg); err != nil {
			t.Fatalf("publishing message %d to %q: %v", i, topic, err)
		}
	}
}

// brokerSetup is what the broker tests share on one backend.
type brokerSetup struct {
	backend backend
	issuer  *testid.Issuer

	genuine *subscriber

	// roguePlain registered an unsigned node through the plain registry.
	roguePlain *subscriber

	// rogueSigned's node was signed with an identity allowed the topic
	// payments only.
	rogueSigned *subscriber

	genuineNodeID, rogueSignedNodeID string
}

func newBrokerSetup(t *testing.T, b backend) *brokerSetup {
	t.Helper()
	is := testid.NewIssuer(t, time.Now)
	orders := is.Node(t, "orders-consumer", []string{signing.BrokerService}, []string{topic}, time.Hour)
	payments := is.Node(t, "payments-consumer", []string{signing.BrokerService}, []string{"payments"}, time.Hour)
	attacker := b.connect(t)

	s := &brokerSetup{
		backend:    b,
		issuer:     is,
		genuine:    subscribe(t, is.Wrap(t, b.connect(t), orders, time.Now), topic),
		roguePlain: subscribe(t, b.connect(t), topic),
	}

	// The signed rogue subscribes through a private registry that no other
	// participant reads. The attacker signs its node by hand with the
	// payments identity and registers it in the backend.
	private := registry.NewMemoryRegistry()
	s.rogueSigned = subscribe(t, private, topic)
	svc, node := brokerNode(t, private, s.rogueSigned.broker.Address())
	if _, _, err := testid.Signer(t, payments, time.Now).Sign(svc); !errors.Is(err, signing.ErrNotAllowed) {
		t.Fatalf("signing a %q subscriber with an identity allowed %q only: error %v, want %v", topic, "payments", err, signing.ErrNotAllowed)
	}
	now := time.Now()
	forged := testid.ForgeNode(t, testid.Forged{Key: payments.Key, Token: payments.Token, IssuedAt: now, Expiry: now.Add(10 * time.Minute)}, svc, node)
	inject(t, attacker, &registry.Service{Name: svc.Name, Version: svc.Version, Nodes: []*registry.Node{forged}})
	s.rogueSignedNodeID = forged.Id

	_, genuineNode := brokerNode(t, attacker, s.genuine.broker.Address())
	brokerNode(t, attacker, s.roguePlain.broker.Address())
	s.genuineNodeID = genuineNode.Id
	waitFor(t, "the forged subscriber node in the backend", func() bool {
		services, _ := attacker.GetService(signing.BrokerService)
		for _, svc := range services {
			for _, n := range svc.Nodes {
				if n.Id == s.rogueSignedNodeID {
					return true
				}
			}
		}
		return false
	})
	return s
}

func (s *brokerSetup) counts() (genuine, roguePlain, rogueSigned int64) {
	return s.genuine.received.Load(), s.roguePlain.received.Load(), s.rogueSigned.received.Load()
}

func TestBrokerRogueSubscribers(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := newBrokerSetup(t, b.start(t))
			t.Run("signet", func(t *testing.T) { testBrokerSignet(t, s) })
			t.Run("plain", func(t *testing.T) { testBrokerPlain(t, s) })
		})
	}
}

func testBrokerSignet(t *testing.T, s *brokerSetup) {
	obs := testid.NewObserver()
	reg := s.issuer.Wrap(t, s.backend.connect(t), nil, time.Now, signet.WithObserver(obs))
	pub := connectBroker(t, reg)
	genuine0, plain0, signed0 := s.counts()

	publish(t, pub, messages)
	waitFor(t, "the genuine subscriber to get every message", func() bool {
		genuine, _, _ := s.counts()
		return genuine-genuine0 >= messages
	})
	deadline := time.Now().Add(quietPeriod)
	for time.Now().Before(deadline) {
		if _, plain, signed := s.counts(); plain != plain0 || signed != signed0 {
			break
		}
		time.Sleep(pollInterval)
	}

	genuine1, plain1, signed1 := s.counts()
	if got := genuine1 - genuine0; got != messages {
		t.Errorf("genuine subscriber got %d messages, want %d", got, messages)
	}
	if got := plain1 - plain0; got != 0 {
		t.Errorf("rogue subscriber with an unsigned node got %d messages, want 0", got)
	}
	if got := signed1 - signed0; got != 0 {
		t.Errorf("rogue subscriber signed for topic payments got %d messages, want 0", got)
	}

	if got := obs.Rejections("unsigned"); got < 1 {
		t.Errorf("signet rejected %d unsigned subscriber nodes, want at least 1", got)
	}
	if got := obs.Rejections("not-allowed"); got < 1 {
		t.Errorf("signet rejected %d subscriber nodes as not allowed, want at least 1", got)
	}

	services, err := reg.GetService(signing.BrokerService)
	if err != nil {
		t.Fatalf("signet lookup of %s: %v", signing.BrokerService, err)
	}
	var ids []string
	for _, svc := range services {
		for _, n := range svc.Nodes {
			ids = append(ids, n.Id)
		}
	}
	if len(ids) != 1 || ids[0] != s.genuineNodeID {
		t.Errorf("signet returned subscriber nodes %q, want only the genuine %q", ids, s.genuineNodeID)
	}
}

// testBrokerPlain publishes through the plain registry and checks that both
// rogue subscribers get the messages, so that testBrokerSignet's zero
// counts mean something.
func testBrokerPlain(t *testing.T, s *brokerSetup) {
	pub := connectBroker(t, s.backend.connect(t))
	genuine0, plain0, signed0 := s.counts()

	publish(t, pub, messages)
	waitFor(t, "every subscriber to get every message", func() bool {
		genuine, plain, signed := s.counts()
		return genuine-genuine0 >= messages && plain-plain0 >= messages && signed-signed0 >= messages
	})

	genuine1, plain1, signed1 := s.counts()
	if got := genuine1 - genuine0; got != messages {
		t.Errorf("genuine subscriber got %d messages, want %d", got, messages)
	}
	if got := plain1 - plain0; got != messages {
		t.Errorf("through the plain registry, the rogue subscriber with an unsigned node got %d messages, want %d", got, messages)
	}
	if got := signed1 - signed0; got != messages {
		t.Errorf("through the plain registry, the rogue subscriber signed for topic payments got %d messages, want %d", got, messages)
	}
}

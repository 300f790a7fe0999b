/** Every XML namespace the gateway speaks, in one place. */
export const NS = {
  STANZAS: "urn:ietf:params:xml:ns:xmpp-stanzas",
  DISCO_INFO: "http://jabber.org/protocol/disco#info",
  DISCO_ITEMS: "http://jabber.org/protocol/disco#items",
  VERSION: "jabber:iq:version",
  PING: "urn:xmpp:ping",
  REGISTER: "jabber:iq:register",
  GATEWAY: "jabber:iq:gateway",
  DATA_FORMS: "jabber:x:data",
  COMMANDS: "http://jabber.org/protocol/commands",
  CAPS: "http://jabber.org/protocol/caps",
  JID_ESCAPING: "jid\\20escaping",
  RECEIPTS: "urn:xmpp:receipts",
  OOB: "jabber:x:oob",
  DELAY: "urn:xmpp:delay",
  STANZA_ID: "urn:xmpp:sid:0",
  CHAT_STATES: "http://jabber.org/protocol/chatstates",
  NICK: "http://jabber.org/protocol/nick",
  MUC: "http://jabber.org/protocol/muc",
  MUC_USER: "http://jabber.org/protocol/muc#user",
  HINTS: "urn:xmpp:hints",
  MARKERS: "urn:xmpp:chat-markers:0",
  CORRECT: "urn:xmpp:message-correct:0",
  MAM: "urn:xmpp:mam:2",
  /** XEP-0059 result set management (paging). */
  RSM: "http://jabber.org/protocol/rsm",
  FORWARD: "urn:xmpp:forward:0",
  CLIENT: "jabber:client",
} as const;

/** XEP-0115 node URI identifying this software. */
export const CAPS_NODE = "urn:xmpp-gateway";

package slapdtest

// SignInLDIF is a directory for sign-in tests: people under
// ou=people,dc=toyokawa,dc=example with passwords (kacho: kacho-pw, in the
// group cn=approvers,ou=groups; two entries with the uid twin, which must
// never sign in), for Start.
const SignInLDIF = `dn: dc=toyokawa,dc=example
objectClass: dcObject
objectClass: organization
o: Toyokawa
dc: toyokawa

dn: ou=people,dc=toyokawa,dc=example
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=toyokawa,dc=example
objectClass: organizationalUnit
ou: groups

dn: uid=kacho,ou=people,dc=toyokawa,dc=example
objectClass: inetOrgPerson
uid: kacho
cn: kacho
sn: kacho
displayName:: 6Kqy6ZW3
mail: kacho@city.toyokawa.aichi.jp
userPassword: kacho-pw

dn: uid=twin,ou=people,dc=toyokawa,dc=example
objectClass: inetOrgPerson
uid: twin
cn: twin
sn: twin
userPassword: twin-pw

dn: cn=twin2,ou=people,dc=toyokawa,dc=example
objectClass: inetOrgPerson
uid: twin
cn: twin2
sn: twin
userPassword: twin-pw

dn: cn=approvers,ou=groups,dc=toyokawa,dc=example
objectClass: groupOfNames
cn: approvers
member: uid=kacho,ou=people,dc=toyokawa,dc=example
`

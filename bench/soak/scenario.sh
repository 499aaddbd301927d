# Sourced by bench/soak.sh: write_scenarios DIR [BEARER] writes the soak flow and its
# requirements. BEARER: what the last step lists the authenticators with: access_token (the
# mfa-otp grant's access token, the default) or mfa_token (the login's mfa_token: no access
# token reaches the server's verified-token cache; an attribution run for memory growth).
write_scenarios() {
    local dir=$1 bearer=${2:-access_token}
    case $bearer in
        access_token) bearer=access_token ;;
        mfa_token) bearer=login_mfa_token ;;
        *) echo "soak: SOAK_LIST_WITH=$bearer: access_token or mfa_token" >&2; return 2 ;;
    esac
    mkdir -p "$dir"
    cat >"$dir/requirements.yaml" <<'EOF'
version: "1.0.0"
requirements:
  - id: SOAK-LOGIN
    area: login
    text: A password-realm login of an enrolled user answers 403 mfa_required with an mfa_token.
    source: "bench/soak.sh"
    level: must
  - id: SOAK-ENROLL
    area: otp
    text: POST /mfa/associate with the mfa_token enrolls an OTP authenticator (base32 secret).
    source: "bench/soak.sh"
    level: must
  - id: SOAK-OTP
    area: otp
    text: The mfa-otp grant with the current TOTP code answers 200 with an access token.
    source: "bench/soak.sh"
    level: must
  - id: SOAK-LIST
    area: management
    text: GET /mfa/authenticators with that access token (audience <base>/mfa/, scope read:authenticators) answers 200 and lists the active OTP authenticator.
    source: "bench/soak.sh"
    level: must
EOF
    sed "s/@BEARER@/$bearer/" >"$dir/soak-otp.yaml" <<'EOF'
description: >-
  Soak flow (bench/soak.sh): an OTP user logs in, completes MFA with the mfa-otp grant and
  the current TOTP code, and lists its authenticators with the new access token. The setup
  (once per pool user, outside the measurement) logs in and associates the OTP
  authenticator; the user's first flow confirms it with its mfa-otp grant (the same
  request as every later one). Confirming in setup would need the previous step's code
  (the pool treats a new user as unused in the current step), which the server refuses
  when a 30-s boundary falls between rendering the code and checking it: a near certainty
  somewhere among thousands of users provisioned under load.
tags: [soak]
requires: [otp]
setup:
  - name: log in
    request:
      method: POST
      path: /oauth/token
      form:
        grant_type: http://auth0.com/oauth/grant-type/password-realm
        client_id: "{{ target.client_id }}"
        client_secret: "{{ target.client_secret }}"
        username: "{{ user.username }}"
        password: "{{ user.password }}"
        realm: "{{ target.realm }}"
    checks:
      - {req: SOAK-LOGIN, status: 403}
    capture:
      mfa_token: $.mfa_token
  - name: associate otp
    request:
      method: POST
      path: /mfa/associate
      bearer: "{{ mfa_token }}"
      json: {authenticator_types: [otp]}
    checks:
      - {req: SOAK-ENROLL, status: 200}
      - {req: SOAK-ENROLL, path: $.secret, matches: "^[A-Z2-7]+=*$"}
    capture:
      otp_secret: $.secret
steps:
  - name: log in
    request:
      method: POST
      path: /oauth/token
      form:
        grant_type: http://auth0.com/oauth/grant-type/password-realm
        client_id: "{{ target.client_id }}"
        client_secret: "{{ target.client_secret }}"
        username: "{{ user.username }}"
        password: "{{ user.password }}"
        realm: "{{ target.realm }}"
        audience: "{{ target.audience }}"
        scope: read:authenticators
    checks:
      - {req: SOAK-LOGIN, status: 403}
      - {req: SOAK-LOGIN, path: $.error, equals: mfa_required}
    capture:
      login_mfa_token: $.mfa_token
  - name: mfa-otp grant
    request:
      method: POST
      path: /oauth/token
      form:
        grant_type: http://auth0.com/oauth/grant-type/mfa-otp
        client_id: "{{ target.client_id }}"
        client_secret: "{{ target.client_secret }}"
        mfa_token: "{{ login_mfa_token }}"
        otp: "{{ totp(otp_secret) }}"
    checks:
      - {req: SOAK-OTP, status: 200}
      - {req: SOAK-OTP, path: $.access_token, type: string}
    capture:
      access_token: $.access_token
  - name: list authenticators
    request:
      method: GET
      path: /mfa/authenticators
      bearer: "{{ @BEARER@ }}"
    checks:
      - {req: SOAK-LIST, status: 200}
      - {req: SOAK-LIST, path: "$[0].authenticator_type", equals: otp}
      - {req: SOAK-LIST, path: "$[0].active", equals: true}
EOF
}

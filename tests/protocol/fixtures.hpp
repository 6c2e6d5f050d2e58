#pragma once

#include <string_view>

// Bytes captured from real PostgreSQL 15.20 sessions (psql and pgbench 15.20 through a recording
// relay, TLS off), as hex. Decode with from_hex(). Roles: sluice/"pencil" (SCRAM-SHA-256) and
// bar/"foo" (MD5).

namespace sluice::protocol::test::fixtures {

// pg_authid.rolpassword of role sluice after ALTER ROLE ... PASSWORD 'pencil'.
inline constexpr std::string_view pencil_verifier =
    "SCRAM-SHA-256$4096:k3omoCANXHoiUTfUljmfgw==$"
    "IcHTBUXMAKs6yIpTaUSvFm98Fx74JWK31nffTol6sNM=:KdB58Hm5wsm0V4taro4DuagzstdlaE2JCDpMoGQyuns=";
// pg_authid.rolpassword of role bar after SET password_encryption = md5; ... PASSWORD 'foo'.
inline constexpr std::string_view bar_md5_hash = "md53858f62230ac3c915f300c664312c63f";

// StartupMessage from psql: user=sluice database=postgres application_name=psql.
inline constexpr std::string_view psql_startup_message =
    "0000003d000300007573657200736c7569636500646174616261736500706f737467726573006170706c6963"
    "6174696f6e5f6e616d65007073716c0000";

// SSLRequest from psql with sslmode=prefer.
inline constexpr std::string_view psql_ssl_request = "0000000804d2162f";

// CancelRequest psql sent on Ctrl-C, for the backend key in psql_cancel_backend_key_data.
inline constexpr std::string_view psql_cancel_request = "0000001004d2162e00001553020d76fc";

// The BackendKeyData of the session psql_cancel_request cancels.
inline constexpr std::string_view psql_cancel_backend_key_data = "4b0000000c00001553020d76fc";

// AuthenticationSASL offering SCRAM-SHA-256 (no -PLUS: TLS was off).
inline constexpr std::string_view auth_sasl = "52000000170000000a534352414d2d5348412d3235360000";

// SASLInitialResponse: SCRAM-SHA-256, client-first "n,,n=,r=C2mmBVQY8QOG9e25PIXczitW".
inline constexpr std::string_view psql_sasl_initial_response =
    "7000000036534352414d2d5348412d32353600000000206e2c2c6e3d2c723d43326d6d4256515938514f4739"
    "653235504958637a697457";

// AuthenticationSASLContinue: server-first.
inline constexpr std::string_view auth_sasl_continue =
    "520000005c0000000b723d43326d6d4256515938514f4739653235504958637a69745732444e73776d426e4c"
    "354b423577514b35726e64413447362c733d6b336f6d6f43414e58486f69555466556c6a6d6667773d3d2c69"
    "3d34303936";

// SASLResponse: client-final with the proof for password "pencil".
inline constexpr std::string_view psql_sasl_response =
    "700000006c633d626977732c723d43326d6d4256515938514f4739653235504958637a69745732444e73776d"
    "426e4c354b423577514b35726e64413447362c703d30436c55563730614930774543682b42706c7451306730"
    "56633241563331337076356f41357853744234493d";

// One TCP read after the SASLResponse: AuthenticationSASLFinal, AuthenticationOk, 13
// ParameterStatus, BackendKeyData, ReadyForQuery.
inline constexpr std::string_view server_greeting =
    "52000000360000000c763d63524c48544b4267596c7541554d4b686a4d716e3656544d68473931542f504866"
    "31466761502b4c67556f3d520000000800000000530000001a6170706c69636174696f6e5f6e616d65007073"
    "716c005300000019636c69656e745f656e636f64696e670055544638005300000017446174655374796c6500"
    "49534f2c204d445900530000002664656661756c745f7472616e73616374696f6e5f726561645f6f6e6c7900"
    "6f6666005300000017696e5f686f745f7374616e646279006f6666005300000019696e74656765725f646174"
    "6574696d6573006f6e00530000001b496e74657276616c5374796c6500706f73746772657300530000001569"
    "735f737570657275736572006f66660053000000197365727665725f656e636f64696e670055544638005300"
    "0000327365727665725f76657273696f6e0031352e3230202844656269616e2031352e32302d302b64656231"
    "3275312900530000002173657373696f6e5f617574686f72697a6174696f6e00736c75696365005300000023"
    "7374616e646172645f636f6e666f726d696e675f737472696e6773006f6e00530000001554696d655a6f6e65"
    "004574632f555443004b0000000c0000151d7c5642f25a0000000549";

// Query "select 1 as one".
inline constexpr std::string_view psql_query = "510000001473656c6563742031206173206f6e6500";

// Reply to psql_query: RowDescription, DataRow, CommandComplete "SELECT 1", ReadyForQuery idle.
inline constexpr std::string_view query_response =
    "540000001c00016f6e6500000000000000000000170004ffffffff0000440000000b00010000000131430000"
    "000d53454c4543542031005a0000000549";

// Terminate.
inline constexpr std::string_view terminate = "5800000004";

// ErrorResponse FATAL 28P01 after a wrong password.
inline constexpr std::string_view error_auth_failed =
    "450000006653464154414c0056464154414c00433238503031004d70617373776f72642061757468656e7469"
    "636174696f6e206661696c656420666f7220757365722022736c75696365220046617574682e63004c333334"
    "0052617574685f6661696c65640000";

// ErrorResponse FATAL 3D000 for dbname=nosuchdb.
inline constexpr std::string_view error_no_database =
    "450000005d53464154414c0056464154414c00433344303030004d646174616261736520226e6f7375636864"
    "622220646f6573206e6f742065786973740046706f7374696e69742e63004c3934380052496e6974506f7374"
    "677265730000";

// ErrorResponse ERROR 57014 after the cancel.
inline constexpr std::string_view error_query_canceled =
    "4500000068534552524f5200564552524f5200433537303134004d63616e63656c696e672073746174656d65"
    "6e742064756520746f207573657220726571756573740046706f7374677265732e63004c3333343900525072"
    "6f63657373496e74657272757074730000";

// NoticeResponse from RAISE NOTICE 'hello' USING DETAIL, HINT.
inline constexpr std::string_view notice_with_detail_and_hint =
    "4e0000008f534e4f5449434500564e4f5449434500433030303030004d68656c6c6f0044736f6d6520646574"
    "61696c0048612068696e740057504c2f706753514c2066756e6374696f6e20696e6c696e655f636f64655f62"
    "6c6f636b206c696e6520312061742052414953450046706c5f657865632e63004c333930370052657865635f"
    "73746d745f72616973650000";

// StartupMessage for user=bar (password "foo", stored as MD5).
inline constexpr std::string_view md5_startup_message =
    "0000003a00030000757365720062617200646174616261736500706f737467726573006170706c6963617469"
    "6f6e5f6e616d65007073716c0000";

// AuthenticationMD5Password with salt 4f 00 77 6d.
inline constexpr std::string_view auth_md5 = "520000000c000000054f00776d";

// PasswordMessage psql answered auth_md5 with.
inline constexpr std::string_view md5_password_message =
    "70000000286d6435383361343434623032383632383532656235373931323730363830323565353400";

// pgbench -M prepared: Parse "P_0" "SELECT $1::int4 AS answer;" with no types, then Sync.
inline constexpr std::string_view pgbench_parse_sync =
    "5000000025505f300053454c4543542024313a3a696e743420415320616e737765723b0000005300000004";

// pgbench -M prepared: Bind P_0 with text "42", Describe portal, Execute, Sync.
inline constexpr std::string_view pgbench_bind_describe_execute_sync =
    "420000001700505f300000000001000000023432000100004400000006500045000000090000000000530000"
    "0004";

// Reply to pgbench_parse_sync: ParseComplete, ReadyForQuery.
inline constexpr std::string_view pgbench_parse_reply = "31000000045a0000000549";

// Reply to pgbench_bind_describe_execute_sync: BindComplete, RowDescription, DataRow "42",
// CommandComplete, ReadyForQuery.
inline constexpr std::string_view pgbench_execute_reply =
    "3200000004540000001f0001616e7377657200000000000000000000170004ffffffff0000440000000c0001"
    "000000023432430000000d53454c4543542031005a0000000549";

}  // namespace sluice::protocol::test::fixtures

#pragma once

// The Byte1 type codes of typed messages, by direction: the same letter means different messages
// in each direction ('D' is Describe from the client, DataRow from the server).
// https://www.postgresql.org/docs/15/protocol-message-formats.html

namespace sluice::protocol {

// Client -> server.
namespace frontend_type {
inline constexpr char bind = 'B';           // Bind: bind parameters to a statement, make a portal.
inline constexpr char close = 'C';          // Close: drop a statement or portal.
inline constexpr char copy_data = 'd';      // CopyData: a chunk of COPY FROM STDIN data.
inline constexpr char copy_done = 'c';      // CopyDone: end of COPY FROM STDIN data.
inline constexpr char copy_fail = 'f';      // CopyFail: the client aborts COPY FROM STDIN.
inline constexpr char describe = 'D';       // Describe: ask for a statement or portal's shape.
inline constexpr char execute = 'E';        // Execute: run a portal.
inline constexpr char flush = 'H';          // Flush: send pending replies now, without a Sync.
inline constexpr char function_call = 'F';  // FunctionCall: the legacy fast-path call.
inline constexpr char parse = 'P';          // Parse: prepare a statement.
inline constexpr char password = 'p';       // PasswordMessage, SASLInitialResponse, SASLResponse,
                                            // GSSResponse: meaning depends on the auth step.
inline constexpr char query = 'Q';          // Query: simple-protocol SQL text.
inline constexpr char sync = 'S';           // Sync: end of an extended-protocol batch.
inline constexpr char terminate = 'X';      // Terminate: the client is leaving.
}  // namespace frontend_type

// Server -> client.
namespace backend_type {
inline constexpr char authentication = 'R';              // Authentication* (subtype in body).
inline constexpr char backend_key_data = 'K';            // BackendKeyData: the cancel key.
inline constexpr char bind_complete = '2';               // BindComplete.
inline constexpr char close_complete = '3';              // CloseComplete.
inline constexpr char command_complete = 'C';            // CommandComplete: the command tag.
inline constexpr char copy_both_response = 'W';          // CopyBothResponse (replication).
inline constexpr char copy_data = 'd';                   // CopyData: COPY TO STDOUT data.
inline constexpr char copy_done = 'c';                   // CopyDone.
inline constexpr char copy_in_response = 'G';            // CopyInResponse: send COPY data now.
inline constexpr char copy_out_response = 'H';           // CopyOutResponse: COPY data follows.
inline constexpr char data_row = 'D';                    // DataRow: one result row.
inline constexpr char empty_query_response = 'I';        // EmptyQueryResponse.
inline constexpr char error_response = 'E';              // ErrorResponse.
inline constexpr char function_call_response = 'V';      // FunctionCallResponse.
inline constexpr char negotiate_protocol_version = 'v';  // NegotiateProtocolVersion.
inline constexpr char no_data = 'n';                     // NoData: the statement returns no rows.
inline constexpr char notice_response = 'N';             // NoticeResponse.
inline constexpr char notification_response = 'A';       // NotificationResponse (LISTEN/NOTIFY).
inline constexpr char parameter_description = 't';       // ParameterDescription.
inline constexpr char parameter_status = 'S';            // ParameterStatus: a GUC report.
inline constexpr char parse_complete = '1';              // ParseComplete.
inline constexpr char portal_suspended = 's';            // PortalSuspended: Execute row limit hit.
inline constexpr char ready_for_query = 'Z';             // ReadyForQuery: transaction status.
inline constexpr char row_description = 'T';             // RowDescription.
}  // namespace backend_type

}  // namespace sluice::protocol
